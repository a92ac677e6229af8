"""`python -m workers.cli`, as the tests and the demo start the command."""

from workers.cli import main

main()
