from sdap_cli.cli import main

main()
