from tap_mokapen.tap import TapMokapen

TapMokapen.cli()
