"""The relay: webhooks reach a machine with no public address.

``hookwise relay serve`` (:mod:`.server`) runs on a public host: each channel gets an
unguessable URL, and every request sent to it is stored durably, byte for byte.
``hookwise relay connect`` (:mod:`.client`) runs on the laptop: it streams the channel
over an outbound connection and replays each request to the local receiver, resuming
after the last acknowledged one whenever the connection comes back. The wire format is
:mod:`.protocol`; the storage rules, :mod:`.store`. The why and how: ``docs/relay.md``.
"""
