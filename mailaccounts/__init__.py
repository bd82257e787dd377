"""The mailaccounts service: settings, command line and the wiring of the packages."""
