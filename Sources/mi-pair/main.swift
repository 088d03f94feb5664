import MICLI
CloseOut.install()
PairCommand.main()
