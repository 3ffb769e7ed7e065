"""Device drivers: protocols, the links they run over, and emulators to test them."""
