"""The two roles a network plays in SDAP inference, each with what applies to it.

* the **teacher**: a blind-spot network (DBSNl). It cannot see the pixel it denoises, so it runs on the
  PD-f sub-images (any f in 1..8; 2 in SDAP) and then a refinement ('none', 'e': SDAP's second
  full-resolution pass, 'r3': AP-BSN's random replacing);
* the **student**: an ordinary network distilled from a teacher. It sees every pixel: one plain pass,
  PD 1, no refinement.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Role", "TEACHER", "STUDENT"]


@dataclass(frozen=True)
class Role:
    """A network's role: its name in reports and the refinements and PD factors that apply to it.

        >>> TEACHER.one_pass, STUDENT.one_pass, str(STUDENT), 2 in TEACHER.pd_factors
        (False, True, 'student', True)
    """

    name: str
    refines: tuple[str, ...]
    pd_factors: tuple[int, ...]

    @property
    def one_pass(self) -> bool:
        """One plain pass: no choice of refinement or PD factor (the student)."""
        return self.refines == ("none",) and self.pd_factors == (1,)

    def __str__(self) -> str:
        return self.name


TEACHER = Role("teacher", ("none", "e", "r3"), (1, 2, 3, 4, 5, 6, 7, 8))
STUDENT = Role("student", ("none",), (1,))
