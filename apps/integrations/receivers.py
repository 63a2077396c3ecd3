"""Signal receivers that turn other apps' events into webhook deliveries."""
