"""The student's side of nbgrader's exchange, with one permission tightened.

nbgrader's submit leaves each submission folder in ``inbound`` mode 0777 so the instructor can
delete it later; another student who learned the folder's name could then delete or replace the
files in it. ``StickySubmit`` adds the sticky bit (1777): files in the folder can be removed or
renamed only by their owner, the folder's owner or root. Files a stranger adds are caught at
collect time, where every file must belong to the student the folder names
(``grader.steps.collect``).
"""
import os
import stat

from nbgrader.exchange.default import ExchangeSubmit


class StickySubmit(ExchangeSubmit):

    def copy_files(self):
        super().copy_files()
        folder = os.path.join(self.inbound_path, self.assignment_filename)
        os.chmod(folder, os.stat(folder).st_mode | stat.S_ISVTX)
