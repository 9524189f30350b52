"""The shell: the `bedrockctl` command line over every process package (and nothing imports it)."""
