# voip.sip: the SIP stack of the sans-I/O core (message syntax, digest auth, transactions,
# dialogs, registration, the user agent). MIT licence.
#
# Import the submodule you need (voip.sip.message, voip.sip.digest, ...): this package file
# imports nothing, so a device that only parses messages loads only the parser.
