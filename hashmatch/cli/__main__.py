"""`python -m hashmatch.cli`: the same as the `hashmatch` command."""
from . import main

main()
