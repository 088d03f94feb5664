import ArgumentParser
import MICLI
import MIStream

ValidateCommand.main()
