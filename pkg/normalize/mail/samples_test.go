package mail

import "path/filepath"

var samplesDir = filepath.Join("..", "..", "..", "..", "shared", "samples")
