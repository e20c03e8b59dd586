"""Building blocks of the shipped report templates (templates/report.docx, templates/full_report.docx).

`scripts/make_template.py` is the command; the modules here hold the pieces it assembles:

* `metrics`: the page geometry of GB/T 9704-2012 and the arithmetic behind it (character grid,
  page-number position, the 自评表's column widths);
* `ooxml`: small helpers that write WordprocessingML elements, and the package parts python-docx
  cannot set (font table, extended properties, compatibility settings);
* `styles`: the named styles a clerk sees and edits in Word;
* `page`: the two sections (portrait body, landscape 附件) with their page numbers;
* `form`: the 附件 项目支出绩效自评表 laid out as the national 附件1 form;
* `outlines`: the body text of each template (短版 report.docx, 财预〔2020〕10号 附件3 full_report.docx)
  and the shared ending (评价结论, 附件说明, 署名, 成文日期);
* `build`: assembles a template and writes it with fixed bytes.
"""
