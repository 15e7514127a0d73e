"""The lab that judges pystack: throwaway namespaces with the kernel as the peer, an impaired wire, the
daemon observed, and reference computations.

Not part of the stack: ``pip install -e .`` installs it beside ``pystack`` so that tests/ and scripts/
import it by name. It shares no protocol code with pystack (it judges the stack); only the observer
runs the daemon itself.
"""
