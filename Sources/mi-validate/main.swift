import ArgumentParser
import MICLI
import MIStream

CloseOut.install()
ValidateCommand.main()
