import MICLI
import MICore

// The BLAS kernel is chosen when the library loads, so this must come before anything else.
BLASRuntime.selectKernel()
MemoryTuning.retainFreedMemory()
CloseOut.install()
GenerateCommand.main()
