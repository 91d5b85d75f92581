from mokapen_sandbox.cli import main

main()
