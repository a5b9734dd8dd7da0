-- The contact line printed on code sheets and notices (联系方式: who to call, where the office is),
-- e.g. '筹备组 王女士 0595-22000000，物业服务中心一楼'. Empty until set; documents then name the
-- convener only.
ALTER TABLE community
    ADD COLUMN contact text NOT NULL DEFAULT '' CHECK (length(contact) <= 200);

COMMENT ON COLUMN community.contact IS 'contact line printed on code sheets and notices (<= 200 characters)';
