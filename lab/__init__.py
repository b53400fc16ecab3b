"""Loyalty Lab: simulate retail loyalty schemes and compare them."""
