// replaced by the Mustache compiler
