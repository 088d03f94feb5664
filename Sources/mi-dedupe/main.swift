DedupeCommand.main()
