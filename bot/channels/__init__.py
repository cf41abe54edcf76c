"""Channels: the ways a text leaves the bot (a WeChat account, an official group robot, an
app bot) and the ways messages come in, declared by capabilities and limits."""
