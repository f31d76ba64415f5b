"""getfile's terminal app: a download form, live transfers, a log and a local server.

Everything that touches the network goes through ``getfile_core``'s public
client and server API; this package only decides what to show and when.
"""
