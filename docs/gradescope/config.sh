# Read by run_autograder. The student's file, in the submission's top directory:
SUBMISSION_FILE=backprop.py
# More options of `backprop-verify check` (pin the homework's network, more cases, a budget
# that fits Gradescope's time limit):
CHECK_OPTIONS="--examples 100 --budget 240"
# Who reads the reports: student (no harness internals) or instructor.
AUDIENCE=student
