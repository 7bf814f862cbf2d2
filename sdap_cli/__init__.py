"""sdap: self-supervised real-noise removal with SDAP (Pan et al., ICCV 2023)."""

import os as _os

# OpenCV refuses to decode images over 2^30 pixels (a gigapixel panorama) unless this is raised before
# cv2 is first imported; sdap checks each image's size against the memory available instead
# (sdap_cli/inference/memory.py). A value the user set is kept.
_os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(1 << 40))

__version__ = "0.1.0"
