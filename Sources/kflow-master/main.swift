import Shared

KflowMasterCommand.main()
