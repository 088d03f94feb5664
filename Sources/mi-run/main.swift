// mi-run only starts the other tools; each selects its own BLAS kernel.
RunCommand.main()
