from tap_mokapen.cli import CommandLine

CommandLine.cli()
