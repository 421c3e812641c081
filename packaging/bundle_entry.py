"""The bundle's entry point (packaging/atelier.spec): the `atelier` command, frozen."""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen program re-executes itself for worker processes
    from studio.cli import main

    sys.exit(main())
