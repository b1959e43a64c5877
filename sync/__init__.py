"""Everything that crosses to central IT: signed policy bundles, the durable outbox, the edge
sync agent and the control plane server (``sync.central``). Built by the sync issue."""
