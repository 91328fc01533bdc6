from hashguard.cli import main

main()
