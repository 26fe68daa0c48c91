from fakescope_cli.cli import main

main()
