from kea.cli.main import main

main()
