package httpbench

// Bracket is bracket, for the external tests.
var Bracket = bracket
