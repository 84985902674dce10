"""The `learngene` command line: one module per group of subcommands, shared argument types in `arguments`."""
