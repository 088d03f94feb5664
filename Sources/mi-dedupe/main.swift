import MICLI
CloseOut.install()
DedupeCommand.main()
