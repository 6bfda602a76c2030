#!/bin/sh
# fetch or prepare model files here
echo bootstrapped > /app/recipe/BOOTSTRAPPED
