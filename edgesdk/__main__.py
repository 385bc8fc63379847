from edgesdk.cli import console_main

# Guarded: worker processes (spawn) import this module again, and must not run the CLI.
if __name__ == "__main__":
    console_main()
