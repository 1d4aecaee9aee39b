from crackcli.cli import main

# Guarded so that spawned worker processes, which re-import the main module, do not rerun the CLI.
if __name__ == "__main__":
    main()
