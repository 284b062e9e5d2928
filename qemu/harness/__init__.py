"""The engine both front ends share: what a lab is, building its modules, booting the VMs, reading what they report."""
