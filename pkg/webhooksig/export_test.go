package webhooksig

// Remembered exposes the number of tokens a Mailgun verifier holds.
func Remembered(v *Mailgun) int { return v.remembered() }
