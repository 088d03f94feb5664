import MICLI

CloseOut.install()
MergeCommand.main()
