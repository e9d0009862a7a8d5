// Package option reads the Corefile stanzas of the module's directives: Parse walks a
// directive's block the same way for each of them (once per server block, its zones, each option
// at most once), and the value parsers read one option's arguments.
//
// Each parser takes the option's name and the arguments that followed it on its Corefile line
// and returns an error that names both the option and the offending value, so a wrong stanza
// fails at startup with a message a user can act on. Parse adds the file and line (c.Err); the
// directive's setup wraps the error with the plugin name (plugin.Error), once.
package option
