"""``python -m trainer``: the same as the ``trainer`` console command (works under torchrun)."""

from cli.trainer_cmd import main

__all__: list[str] = []

if __name__ == "__main__":
    main()
