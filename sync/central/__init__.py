"""The central control plane (``appliance central serve``). Built by the sync issue."""
