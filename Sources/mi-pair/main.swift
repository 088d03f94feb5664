PairCommand.main()
