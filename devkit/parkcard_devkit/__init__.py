"""ParkCard development kit: scripted terminals, the simulated park, the network relay and `parkcard demo`.

Not part of the product: the hub's distribution (`parkcard`) never imports it.
"""
