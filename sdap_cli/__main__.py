from sdap_cli.entry import main

main()
