import MICLI
// mi-run only starts the other tools; each selects its own BLAS kernel.
CloseOut.install()
RunCommand.main()
