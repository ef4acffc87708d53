"""Rules as data: facts about a trip, declarative rule files, and the engine that evaluates them."""
