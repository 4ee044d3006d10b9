"""``python -m trainer``: the same as the ``trainer`` console command (works under torchrun)."""

try:
    from defocuskit_cli.trainer_cmd import main  # installed: cli/ installs as defocuskit_cli
except ModuleNotFoundError:
    from cli.trainer_cmd import main  # a source checkout on PYTHONPATH

__all__: list[str] = []

if __name__ == "__main__":
    main()
