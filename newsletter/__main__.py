"""`python -m newsletter` runs the same CLI as the `newsletter` script."""

from newsletter.cli import main

if __name__ == "__main__":
    main()
