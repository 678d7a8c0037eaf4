"""Models trained on the gold feature table: distributed trees and the fusion net."""
